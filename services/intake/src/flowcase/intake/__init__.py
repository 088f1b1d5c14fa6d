"""The Flowcase intake service: validates, deduplicates and publishes requests, and follows each
one to its outcome (see the service's README)."""
