"""The Flowcase workflow service: versioned process definitions and a deterministic engine that
runs each request on its definition and escalates to a case when the request leaves the path.
See README.md for the definition format and the engine's contract."""
