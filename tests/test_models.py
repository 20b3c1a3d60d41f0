"""Tests of fairser_jax.models against plain NumPy / jnp forward passes."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairser_jax import models
from fairser_jax.config import get_default_config

SIZES = (16, 8)
HIDDEN = 6
FEATURES = 12
BATCH = 10


def _small_model(dropout_rate=0.2):
    return models.FairSERModel(
        encoder_sizes=SIZES, dropout_rate=dropout_rate, adversary_hidden=HIDDEN
    )


def _data(seed=0, batch=BATCH):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, FEATURES)).astype(np.float32)
    y = (rng.random(batch) < 0.5).astype(np.float32)
    g = (rng.random(batch) < 0.5).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y), jnp.asarray(g)


def _init(model, x, seed=0):
    return model.init(jax.random.key(seed), x, train=False)["params"]


def _numpy_forward(params, x):
    """Independent float64 forward pass read off the parameter tree."""
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    h = np.asarray(x, np.float64)
    for i in range(len(SIZES)):
        layer = p["encoder"][f"dense_{i}"]
        h = np.maximum(h @ layer["kernel"] + layer["bias"], 0.0)
    head = p["emotion_head"]["dense"]
    logits = (h @ head["kernel"] + head["bias"])[:, 0]
    adv = p["adversary_head"]
    a = np.maximum(h @ adv["hidden"]["kernel"] + adv["hidden"]["bias"], 0)
    adv_logits = (a @ adv["out"]["kernel"] + adv["out"]["bias"])[:, 0]
    return logits, h, adv_logits


def _jnp_encoder(enc_params, x):
    """Eval-mode encoder written out by hand (no Flax, no reversal)."""
    h = x
    for i in range(len(SIZES)):
        layer = enc_params[f"dense_{i}"]
        h = jax.nn.relu(h @ layer["kernel"] + layer["bias"])
    return h


def _jnp_adversary(adv_params, z):
    a = jax.nn.relu(
        z @ adv_params["hidden"]["kernel"] + adv_params["hidden"]["bias"]
    )
    return (a @ adv_params["out"]["kernel"] + adv_params["out"]["bias"])[:, 0]


def _jnp_emotion(head_params, z):
    return (z @ head_params["dense"]["kernel"] + head_params["dense"]["bias"])[
        :, 0
    ]


def test_output_shapes_and_param_tree():
    model = _small_model()
    x, _, _ = _data()
    params = _init(model, x)
    out = model.apply({"params": params}, x, train=False)
    assert isinstance(out, models.ModelOutput)
    assert out.logits.shape == (BATCH,)
    assert out.embeddings.shape == (BATCH, SIZES[-1])
    assert out.adversary_logits.shape == (BATCH,)
    shapes = jax.tree_util.tree_map(jnp.shape, params)
    assert shapes["encoder"]["dense_0"]["kernel"] == (FEATURES, SIZES[0])
    assert shapes["encoder"]["dense_1"]["kernel"] == (SIZES[0], SIZES[1])
    assert shapes["emotion_head"]["dense"]["kernel"] == (SIZES[1], 1)
    assert shapes["adversary_head"]["hidden"]["kernel"] == (SIZES[1], HIDDEN)
    assert shapes["adversary_head"]["out"]["kernel"] == (HIDDEN, 1)


def test_paper_sizes_from_config():
    # §2.2.2: 768-d wav2vec2 features -> 256 -> 128 -> 1; adversary 64.
    model = models.model_from_config(get_default_config().model)
    x = jnp.zeros((3, 768), jnp.float32)
    variables = jax.eval_shape(
        lambda k: model.init(k, x, train=False), jax.random.key(0)
    )
    shapes = jax.tree_util.tree_map(lambda a: a.shape, variables["params"])
    assert shapes["encoder"]["dense_0"]["kernel"] == (768, 256)
    assert shapes["encoder"]["dense_1"]["kernel"] == (256, 128)
    assert shapes["emotion_head"]["dense"]["kernel"] == (128, 1)
    assert shapes["adversary_head"]["hidden"]["kernel"] == (128, 64)
    assert shapes["adversary_head"]["out"]["kernel"] == (64, 1)
    out = jax.eval_shape(lambda p: model.apply(p, x, train=False), variables)
    assert out.embeddings.shape == (3, 128)
    assert model.dropout_rate == 0.2


def test_eval_forward_matches_numpy_and_is_deterministic():
    model = _small_model()
    x, _, _ = _data(1)
    params = _init(model, x, seed=3)
    apply = jax.jit(lambda p, x: model.apply({"params": p}, x, train=False))
    out1 = apply(params, x)
    out2 = apply(params, x)
    for a, b in zip(*map(jax.tree.leaves, (out1, out2)), strict=True):
        np.testing.assert_array_equal(a, b)
    logits, z, adv = _numpy_forward(params, x)
    np.testing.assert_allclose(out1.logits, logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out1.embeddings, z, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out1.adversary_logits, adv, rtol=1e-5, atol=1e-5)
    # Eval mode ignores a supplied dropout key.
    out3 = model.apply(
        {"params": params}, x, train=False, rngs={"dropout": jax.random.key(9)}
    )
    np.testing.assert_array_equal(out3.logits, out1.logits)


def test_embed_method_and_helper_match_forward():
    model = _small_model()
    x, _, _ = _data(2)
    params = _init(model, x)
    out = model.apply({"params": params}, x, train=False)
    z_method = model.apply(
        {"params": params}, x, method=models.FairSERModel.embed
    )
    z_helper = models.embed(model, params, x)
    np.testing.assert_array_equal(z_method, out.embeddings)
    np.testing.assert_array_equal(z_helper, out.embeddings)
    # Only the encoder's parameters are needed.
    z_enc_only = models.embed(model, {"encoder": params["encoder"]}, x)
    np.testing.assert_array_equal(z_enc_only, out.embeddings)
    key = jax.random.key(4)
    out_train = model.apply(
        {"params": params}, x, train=True, rngs={"dropout": key}
    )
    z_train = models.embed(model, params, x, train=True, dropout_rng=key)
    np.testing.assert_array_equal(z_train, out_train.embeddings)
    with pytest.raises(ValueError, match="needs dropout_rng"):
        models.embed(model, params, x, train=True)


def test_dropout_is_active_in_training_and_keyed_by_rng():
    model = _small_model(dropout_rate=0.5)
    x, _, _ = _data(3, batch=64)
    params = _init(model, x)
    eval_out = model.apply({"params": params}, x, train=False)

    def train_apply(key):
        return model.apply(
            {"params": params}, x, train=True, rngs={"dropout": key}
        )

    a = train_apply(jax.random.key(0))
    b = train_apply(jax.random.key(0))
    c = train_apply(jax.random.key(1))
    np.testing.assert_array_equal(a.embeddings, b.embeddings)
    assert not np.allclose(a.embeddings, c.embeddings)
    assert not np.allclose(a.embeddings, eval_out.embeddings)
    # Rate 0 in training equals evaluation.
    no_drop = _small_model(dropout_rate=0.0)
    z0 = no_drop.apply(
        {"params": params}, x, train=True, rngs={"dropout": jax.random.key(0)}
    ).embeddings
    np.testing.assert_allclose(z0, eval_out.embeddings, rtol=1e-6)


def _np_fmix32(x: np.ndarray) -> np.ndarray:
    """MurmurHash3 fmix32 in plain NumPy uint32 arithmetic (wraps mod 2³²)."""
    x = x ^ (x >> np.uint32(16))
    x = (x * np.uint32(0x85EBCA6B)).astype(np.uint32)
    x = x ^ (x >> np.uint32(13))
    x = (x * np.uint32(0xC2B2AE35)).astype(np.uint32)
    return x ^ (x >> np.uint32(16))


@pytest.mark.parametrize("keep", [0.8, 0.5, 0.1])
def test_keep_mask_equals_a_numpy_reference(keep):
    key = jax.random.key(11)
    k0, k1 = np.asarray(jax.random.key_data(key), np.uint32)
    count = np.arange(7 * 33, dtype=np.uint32)
    with np.errstate(over="ignore"):
        h = _np_fmix32(_np_fmix32(count ^ k0) ^ k1)
    expected = (h < np.uint32(round(keep * 2**32))).reshape(7, 33)
    np.testing.assert_array_equal(
        np.asarray(models.keep_mask(key, (7, 33), keep)), expected
    )


def test_keep_mask_is_bernoulli_and_independent():
    """Keep rate within 5 SD of 0.8; masks of different keys and of
    neighbouring positions uncorrelated (|r| < 5 / sqrt(n))."""
    n = 200_000
    keys = jax.random.split(jax.random.key(0), 2)
    a = np.asarray(models.keep_mask(keys[0], (n,), 0.8), np.float64)
    b = np.asarray(models.keep_mask(keys[1], (n,), 0.8), np.float64)
    assert abs(a.mean() - 0.8) < 5 * np.sqrt(0.8 * 0.2 / n)
    bound = 5 / np.sqrt(n)
    assert abs(np.corrcoef(a, b)[0, 1]) < bound
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < bound


def test_keep_mask_is_the_same_alone_and_vmapped():
    """A run's dropout mask does not depend on the stack it trains in."""
    keys = jax.random.split(jax.random.key(4), 5)
    stacked = jax.vmap(lambda k: models.keep_mask(k, (32, 256), 0.8))(keys)
    for i in range(5):
        np.testing.assert_array_equal(
            stacked[i], models.keep_mask(keys[i], (32, 256), 0.8)
        )


def test_single_layer_dropout_zeroes_and_rescales():
    # With one encoder layer, z_train = mask * z_eval / (1 - p) exactly.
    rate = 0.5
    model = models.FairSERModel(
        encoder_sizes=(32,), dropout_rate=rate, adversary_hidden=4
    )
    x, _, _ = _data(4, batch=64)
    params = _init(model, x)
    z_eval = np.asarray(models.embed(model, params, x))
    z_train = np.asarray(
        models.embed(
            model, params, x, train=True, dropout_rng=jax.random.key(5)
        )
    )
    kept = z_train != 0
    np.testing.assert_allclose(
        z_train[kept], z_eval[kept] / (1 - rate), rtol=1e-6
    )
    active = z_eval > 0
    dropped = np.mean(~kept[active])
    # ~1000 active units: a binomial(0.5) fraction within ±0.07 (>4 SD).
    assert abs(dropped - rate) < 0.07, dropped


@pytest.mark.parametrize("scale", [1.0, 0.5, 2.0])
def test_gradient_reversal_flips_encoder_gradient_only(scale):
    model = _small_model()
    x, y, g = _data(5)
    params = _init(model, x, seed=1)

    def adversary_loss(p):
        out = model.apply({"params": p}, x, train=False, grl_scale=scale)
        return optax.sigmoid_binary_cross_entropy(
            out.adversary_logits, g
        ).mean()

    def manual_adversary_loss(enc, adv):
        z = _jnp_encoder(enc, x)
        return optax.sigmoid_binary_cross_entropy(
            _jnp_adversary(adv, z), g
        ).mean()

    grads = jax.grad(adversary_loss)(params)
    enc_ref, adv_ref = jax.grad(manual_adversary_loss, argnums=(0, 1))(
        params["encoder"], params["adversary_head"]
    )
    # Encoder: exactly -scale times the gradient without reversal.
    jax.tree.map(
        lambda got, ref: np.testing.assert_allclose(
            got, -scale * ref, rtol=1e-5, atol=1e-7
        ),
        grads["encoder"],
        enc_ref,
    )
    # Adversary head: its own gradient is not reversed.
    jax.tree.map(
        lambda got, ref: np.testing.assert_allclose(
            got, ref, rtol=1e-5, atol=1e-7
        ),
        grads["adversary_head"],
        adv_ref,
    )
    # The emotion head does not take part in L_Adv.
    for leaf in jax.tree.leaves(grads["emotion_head"]):
        np.testing.assert_array_equal(leaf, 0.0)
    # Sanity: the reference gradient is not trivially zero.
    assert max(float(jnp.abs(a).max()) for a in jax.tree.leaves(enc_ref)) > 0


def test_emotion_gradient_is_not_reversed_and_losses_compose():
    # Eq. (1) without L_D-R: L_R - L_Adv as seen by the encoder.
    model = _small_model()
    x, y, g = _data(6)
    params = _init(model, x, seed=2)
    scale = 0.7

    def total(p):
        out = model.apply({"params": p}, x, train=False, grl_scale=scale)
        l_r = optax.sigmoid_binary_cross_entropy(out.logits, y).mean()
        l_adv = optax.sigmoid_binary_cross_entropy(
            out.adversary_logits, g
        ).mean()
        return l_r + l_adv

    def manual_encoder_objective(enc):
        z = _jnp_encoder(enc, x)
        l_r = optax.sigmoid_binary_cross_entropy(
            _jnp_emotion(params["emotion_head"], z), y
        ).mean()
        l_adv = optax.sigmoid_binary_cross_entropy(
            _jnp_adversary(params["adversary_head"], z), g
        ).mean()
        return l_r - scale * l_adv

    got = jax.grad(total)(params)["encoder"]
    ref = jax.grad(manual_encoder_objective)(params["encoder"])
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
        got,
        ref,
    )


def test_grl_scale_may_be_traced_under_jit():
    model = _small_model()
    x, _, g = _data(7)
    params = _init(model, x)

    @jax.jit
    def encoder_grad(p, scale):
        def loss(p):
            out = model.apply({"params": p}, x, train=False, grl_scale=scale)
            return optax.sigmoid_binary_cross_entropy(
                out.adversary_logits, g
            ).mean()

        return jax.grad(loss)(p)["encoder"]

    g1 = encoder_grad(params, jnp.float32(1.0))
    g3 = encoder_grad(params, jnp.float32(3.0))
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(
            b, 3.0 * a, rtol=1e-5, atol=1e-7
        ),
        g1,
        g3,
    )


def test_vmap_over_stacked_params_equals_each_member():
    model = _small_model()
    x, _, _ = _data(8)
    members = 4
    keys = jax.random.split(jax.random.key(11), members)
    stacked = jax.vmap(lambda k: model.init(k, x, train=False)["params"])(keys)
    dropout_keys = jax.random.split(jax.random.key(12), members)

    @jax.jit
    def run_all(p, dk):
        def one(p, k):
            return (
                model.apply({"params": p}, x, train=False),
                model.apply({"params": p}, x, train=True, rngs={"dropout": k}),
            )

        return jax.vmap(one)(p, dk)

    # Unbatched references, jitted once and reused for every member.
    init_one = jax.jit(lambda k: model.init(k, x, train=False)["params"])
    eval_one = jax.jit(lambda p: model.apply({"params": p}, x, train=False))
    train_one = jax.jit(
        lambda p, k: model.apply(
            {"params": p}, x, train=True, rngs={"dropout": k}
        )
    )

    eval_all, train_all = run_all(stacked, dropout_keys)
    assert eval_all.logits.shape == (members, BATCH)
    assert train_all.embeddings.shape == (members, BATCH, SIZES[-1])
    for i in range(members):
        member = jax.tree.map(lambda a, i=i: a[i], stacked)
        # Each stacked member is the init of its own key.
        jax.tree.map(np.testing.assert_array_equal, member, init_one(keys[i]))
        ev = eval_one(member)
        tr = train_one(member, dropout_keys[i])
        for got, ref in (
            (eval_all.logits[i], ev.logits),
            (eval_all.embeddings[i], ev.embeddings),
            (eval_all.adversary_logits[i], ev.adversary_logits),
            (train_all.logits[i], tr.logits),
            (train_all.embeddings[i], tr.embeddings),
        ):
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    # Members differ from each other.
    assert not np.allclose(eval_all.logits[0], eval_all.logits[1])


def test_bad_inputs_raise_clear_errors():
    model = _small_model()
    x, _, _ = _data(9)
    params = _init(model, x)
    with pytest.raises(ValueError, match="\\[batch, features\\].*\\(12,\\)"):
        model.apply({"params": params}, x[0], train=False)
    with pytest.raises(ValueError, match="encoder_sizes"):
        models.FairSERModel(encoder_sizes=()).init(
            jax.random.key(0), x, train=False
        )
    with pytest.raises(ValueError, match="dropout_rate must be in"):
        models.FairSERModel(dropout_rate=1.0).init(
            jax.random.key(0), x, train=False
        )
    with pytest.raises(ValueError, match="adversary_hidden"):
        models.FairSERModel(adversary_hidden=0).init(
            jax.random.key(0), x, train=False
        )
