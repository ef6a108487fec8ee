"""Studies: search spaces over a spec, the samplers that draw trials, pruning, presets."""
