"""Custom checkov policies for infra/ (see sync_bicep_policies.py)."""
