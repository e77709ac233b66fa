"""A function app whose one flow follows a script keyed by record id (settlement path tests).

It registers the flow exactly as production flows are registered (functions.flow_triggers),
so the local host drives the real trigger, settlement adapter and bus.
"""

import azure.functions as func

from functions.flow_triggers import register_flow
from shared import runtime
from shared.outcomes import Completed, DeadLetter, RetryLater
from tests.e2e.apps.recorder import SEEN, lock


class ScriptedFlow:
    name = "customers-to-dataverse"

    def handle(self, envelopes):
        outcomes = []
        for env in envelopes:
            record = env.notice.ids[0]
            with lock:
                SEEN.append((record, env.attempt))
            if record == "boom":
                raise RuntimeError("a bug in the flow")
            outcomes.append({
                "ok": Completed(),
                "flaky": RetryLater("BrightpearlUnavailable", "Brightpearl answered 503")
                if env.attempt == 1 else Completed(),
                # a transient failure that is not an outage: availability errors (503, timeouts)
                # retry at most a minute apart and give up by time (RETRY_OUTAGE_*), not after 5
                "down": RetryLater("DataverseReferenceMissing", "account 42 does not exist in Dataverse yet"),
                "throttled": RetryLater("BrightpearlThrottled", "cap reached", delay=600),
                "poison": DeadLetter("InvalidEmail", f"Brightpearl contact {record}: primary e-mail "
                                                     "is not a valid address; fix it in Brightpearl"),
            }[record])
        return outcomes


bp = func.Blueprint()
register_flow(
    bp,
    function_name="customers_to_dataverse",
    topic_setting="BRIGHTPEARL_CHANGES_TOPIC",
    subscription="customers-to-dataverse",
    topic_of=lambda: runtime.settings().bus.brightpearl_changes_topic,
    build_flow=ScriptedFlow,
)
app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(bp)
