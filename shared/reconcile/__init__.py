"""Reconciliation: compare both systems with the links, report what is out of step, heal by notices.

`engine` is entity-independent; an entity joins through its spec's `reconciler`
("module:Class", e.g. `shared.reconcile.customers:CustomerReconcile`). `report` is the JSON
report and where the last one is kept.
"""
