"""The local Flowcase stack: a real Kafka broker and PostgreSQL on one machine, without Docker."""
