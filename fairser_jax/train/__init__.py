"""Training: datasets on device, run stacks, per-variant losses, the runner."""
