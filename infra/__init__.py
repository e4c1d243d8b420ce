"""CDK constructs for the training stack: one module per concern, composed in `stack`."""
