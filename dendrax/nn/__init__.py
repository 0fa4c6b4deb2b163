"""The networks, in JAX/Flax: the dendritic layer, the architectures, synaptic resampling."""
