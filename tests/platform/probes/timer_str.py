"""Probe: a timer trigger annotated with str (the worker binds str and bytes generically)."""

from probe_triggers import new_app, timer

app = new_app()


@timer(app)
def probe(timer: str) -> None:
    pass
