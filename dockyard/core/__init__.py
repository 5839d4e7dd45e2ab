"""The registry's vocabulary: digests, names, media types, manifests and errors. No I/O."""
