"""Anomaly detection (issue 16 item 3): deterministic, explainable flags raised as records sync.

Watches (shared/anomaly/watch.py) run inside the record-sync engine: before the write (they may
hold a record for review, when configured) and after the batch settles. Each flag names its
kind, the record or flow, and the numbers that made it one; it goes to the audit (flow
`anomalies`, result `anomaly`, reason `Anomaly<Kind>`), to Application Insights as the custom
event `bpsync.anomaly` and the metric `bpsync.anomalies`. Never personal data.
"""
