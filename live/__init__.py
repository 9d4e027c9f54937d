"""Live events (DESIGN.md section 5): what a committed change announces, and how it reaches the
live GraphQL subscriptions of every instance.

- live.publish: the session hooks (installed on a runtime's session factory) that announce the
  audit rows of a transaction when it commits, with the subscriptions whose seat usage the writer
  says the change moved (`UnitOfWork.audit(..., affects=[...])`).
- live.hub: each process's subscribers, one hub per database.
- live.listener: the one LISTEN connection per process that feeds the hub.
"""
