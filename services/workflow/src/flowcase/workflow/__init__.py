"""The Flowcase workflow service."""
