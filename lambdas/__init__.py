"""Runtime code shipped to the cloud: the shared validation module and the authorizers that stand on it."""
