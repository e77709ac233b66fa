"""The simulated account's resource stores, one module per resource, composed into `SimState`."""
