"""The case service: case aggregates with a hash-chained audit trail, their application, the case
worker API and the search read model. Its pure core (the aggregate, lifecycle, chain, entries,
commands, errors) does no I/O; the rest are its service layer and adapters."""
