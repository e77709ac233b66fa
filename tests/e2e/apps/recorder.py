"""What the scripted test apps saw; kept apart so a fresh import of an app does not reset it."""

import threading

SEEN: list[tuple[str, int]] = []  # (first record id, attempt) per delivery
lock = threading.Lock()
