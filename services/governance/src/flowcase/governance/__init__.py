"""Flowcase governance: per process type, whether the work fits the layer it runs on."""
