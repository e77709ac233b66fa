"""Function indexing: find the app object, list its functions and their bindings.

Follows the Python worker's loader: import the script module, find exactly one top-level
`func.FunctionRegister` instance, call `get_functions()` once and read each function's
bindings from `get_function_json()` (the same JSON the host receives), then resolve
`%Setting%` placeholders from the app settings.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import json
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import azure.functions as func
import azure.servicebus
from azurefunctions.extensions.bindings.servicebus import (
    ServiceBusMessageActions,
    ServiceBusReceivedMessage,
)

from sandbox.host.config import HostConfigError, resolve_placeholders

HTTP_TRIGGER = "httpTrigger"
SERVICE_BUS_TRIGGER = "serviceBusTrigger"
TIMER_TRIGGER = "timerTrigger"
SUPPORTED_TRIGGERS = (HTTP_TRIGGER, SERVICE_BUS_TRIGGER, TIMER_TRIGGER)
CONTEXT_PARAMETER_NAME = "context"
RETURN_BINDING = "$return"


@dataclass(frozen=True)
class HttpTriggerInfo:
    route: str
    methods: frozenset[str] | None  # None = every method
    auth_level: str  # ANONYMOUS | FUNCTION | ADMIN


@dataclass(frozen=True)
class ServiceBusTriggerInfo:
    topic: str
    subscription: str
    connection: str
    many: bool
    auto_complete: bool | None  # trigger-level autoCompleteMessages; None = host.json decides
    sdk_type: bool  # True: azure.servicebus.ServiceBusReceivedMessage; False: func.ServiceBusMessage
    actions_parameters: tuple[str, ...]


@dataclass(frozen=True)
class TimerTriggerInfo:
    schedule: str
    run_on_startup: bool


@dataclass(frozen=True)
class FunctionInfo:
    """One indexed function: name, trigger, bindings (placeholders resolved) and callable."""

    name: str
    trigger_type: str
    trigger_parameter: str
    trigger: HttpTriggerInfo | ServiceBusTriggerInfo | TimerTriggerInfo
    bindings: tuple[Mapping[str, Any], ...]
    user_function: Callable[..., Any] = field(repr=False)
    is_async: bool
    context_parameter: str | None

    def describe(self, base_url: str, route_prefix: str) -> str:
        """One line for the start-up listing, in the style of Core Tools."""
        t = self.trigger
        if isinstance(t, HttpTriggerInfo):
            methods = ",".join(sorted(t.methods)) if t.methods else "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
            prefix = f"/{route_prefix}" if route_prefix else ""
            return f"{self.name}: [{methods}] {base_url}{prefix}/{t.route} (authLevel={t.auth_level})"
        if isinstance(t, ServiceBusTriggerInfo):
            return (
                f"{self.name}: serviceBusTrigger topic={t.topic} subscription={t.subscription} "
                f"cardinality={'many' if t.many else 'one'}"
            )
        return f"{self.name}: timerTrigger schedule='{t.schedule}' runOnStartup={t.run_on_startup}"


def import_app_module(app_module: str | ModuleType, *, fresh: bool = True) -> ModuleType:
    """Import the function app module (a fresh import by name, like a new worker process)."""
    if isinstance(app_module, ModuleType):
        return app_module
    if fresh:
        sys.modules.pop(app_module, None)
    try:
        return importlib.import_module(app_module)
    except ModuleNotFoundError as exc:
        if exc.name == app_module:
            raise HostConfigError(f"function app module {app_module!r} not found") from exc
        raise


def find_app(module: ModuleType) -> func.FunctionRegister:
    """The single top-level FunctionRegister of the module (the worker's rule)."""
    apps = [value for value in vars(module).values() if isinstance(value, func.FunctionRegister)]
    if not apps:
        raise HostConfigError(f"Could not find top level function app instances in {module.__name__}")
    if len(apps) > 1:
        raise HostConfigError(f"More than one top level function app instances found in {module.__name__}")
    return apps[0]


def index_functions(module: ModuleType, environ: Mapping[str, str]) -> list[FunctionInfo]:
    """Index every function of the module's app, validating bindings and parameters."""
    app = find_app(module)
    try:
        functions = app.get_functions()
    except Exception as exc:
        raise HostConfigError(f"indexing {module.__name__} failed: {exc}") from exc
    infos = [_function_info(fn, environ) for fn in functions]
    return infos


def _function_info(fn: func.Function, environ: Mapping[str, str]) -> FunctionInfo:
    name = fn.get_function_name()
    raw_bindings = json.loads(fn.get_function_json())["bindings"]
    bindings = tuple(
        {
            key: resolve_placeholders(value, environ, f"function {name!r} binding {b.get('name')!r} {key}")
            for key, value in b.items()
        }
        for b in raw_bindings
    )
    triggers = [b for b in bindings if str(b.get("type", "")).endswith("Trigger")]
    if len(triggers) != 1:
        raise HostConfigError(f"function {name!r} must have exactly one trigger, found {len(triggers)}")
    trig = triggers[0]
    trigger_type = trig["type"]
    if trigger_type not in SUPPORTED_TRIGGERS:
        raise HostConfigError(
            f"function {name!r}: trigger type {trigger_type!r} is not supported by the local host"
        )
    for b in bindings:
        if b is trig:
            continue
        if not (trigger_type == HTTP_TRIGGER and b.get("type") == "http" and b.get("direction") == "OUT"):
            raise HostConfigError(
                f"function {name!r}: binding {b.get('name')!r} of type {b.get('type')!r} is not supported "
                "by the local host (publish with the SDK instead)"
            )

    user_function = fn.get_user_function()
    signature = inspect.signature(user_function)
    try:
        hints = typing.get_type_hints(user_function)
    except Exception as exc:  # the worker also fails to load such a function
        raise HostConfigError(f"function {name!r}: cannot resolve its type annotations: {exc}") from exc
    trigger_parameter = trig["name"]
    actions_parameters, context_parameter = _check_parameters(name, signature, hints, bindings)
    if actions_parameters and trigger_type != SERVICE_BUS_TRIGGER:
        # The worker loads this (its settlement client is not tied to the trigger); the local
        # host hands message actions only to Service Bus triggers, so it says so at start-up.
        raise HostConfigError(
            f"function {name!r}: settlement parameter {actions_parameters[0]!r} on a {trigger_type} "
            "function is not supported by the local host (only Service Bus triggers settle messages)"
        )

    trigger: HttpTriggerInfo | ServiceBusTriggerInfo | TimerTriggerInfo
    if trigger_type == HTTP_TRIGGER:
        methods = trig.get("methods")
        trigger = HttpTriggerInfo(
            route=str(trig.get("route") or name).strip("/"),
            methods=frozenset(str(m).upper() for m in methods) if methods else None,
            auth_level=str(trig.get("authLevel", "FUNCTION")).upper(),
        )
    elif trigger_type == SERVICE_BUS_TRIGGER:
        if "topicName" not in trig:
            raise HostConfigError(
                f"function {name!r}: queue triggers are not supported; the local bus has topics only"
            )
        if not trig.get("subscriptionName"):
            raise HostConfigError(f"function {name!r}: subscriptionName is required for a topic trigger")
        many = str(trig.get("cardinality", "ONE")).upper() == "MANY"
        auto = trig.get("autoCompleteMessages")
        if isinstance(auto, str):
            auto = auto.strip().lower() == "true"
        trigger = ServiceBusTriggerInfo(
            topic=trig["topicName"],
            subscription=trig["subscriptionName"],
            connection=str(trig.get("connection", "")),
            many=many,
            auto_complete=None if auto is None else bool(auto),
            sdk_type=_is_sdk_message_type(hints.get(trigger_parameter), many),
            actions_parameters=tuple(actions_parameters),
        )
    else:
        schedule = trig.get("schedule")
        if not schedule:
            raise HostConfigError(f"function {name!r}: timer trigger has no schedule")
        trigger = TimerTriggerInfo(
            schedule=str(schedule), run_on_startup=bool(trig.get("runOnStartup", False))
        )

    return FunctionInfo(
        name=name,
        trigger_type=trigger_type,
        trigger_parameter=trigger_parameter,
        trigger=trigger,
        bindings=bindings,
        user_function=user_function,
        is_async=inspect.iscoroutinefunction(user_function),
        context_parameter=context_parameter,
    )


def _load_error(name: str, problem: str) -> HostConfigError:
    """A load error worded as the worker's FunctionLoadError (the host logs the same text)."""
    return HostConfigError(f"cannot load the {name} function: {problem}")


def _check_parameters(
    name: str,
    signature: inspect.Signature,
    hints: Mapping[str, Any],
    bindings: tuple[Mapping[str, Any], ...],
) -> tuple[tuple[str, ...], str | None]:
    """Apply the worker's load-time rules to the Python parameters and the return annotation.

    Returns the settlement parameter (if any) and the `context` parameter (if any). The rules
    (azure_functions_runtime.functions.Registry, checked against the real worker by
    tests/platform/test_probe_parity.py): every binding names a parameter; a `context` parameter
    is bound by name, not by type; any other parameter without a binding must be the only one and
    be annotated with the settlement type (its default is irrelevant); a binding's annotation is
    a class or a typing generic (not list[...] nor a union) that the binding's converter accepts;
    the $return annotation is a class the output converter accepts.
    """
    params = dict(signature.parameters)
    bound = {str(b["name"]): b for b in bindings if b.get("name") != RETURN_BINDING}
    missing = set(bound) - set(params)
    if missing:
        raise _load_error(
            name,
            "Extra parameters in binding definition \u2014 the following parameters are declared as "
            f"bindings but are not present in Python: {missing!r}",
        )

    context_parameter = None
    if CONTEXT_PARAMETER_NAME in params and CONTEXT_PARAMETER_NAME not in bound:
        params.pop(CONTEXT_PARAMETER_NAME)
        context_parameter = CONTEXT_PARAMETER_NAME
        if CONTEXT_PARAMETER_NAME in hints:
            annotation = hints[CONTEXT_PARAMETER_NAME]
            if not (isinstance(annotation, type) and annotation.__name__ == "Context"):
                raise _load_error(
                    name,
                    'the "context" parameter is expected to be of type azure.functions.Context, '
                    f'got "{annotation!r}"',
                )

    unbound = set(params) - set(bound)
    actions: tuple[str, ...] = ()
    if unbound:
        if len(unbound) > 1 or not _is_actions_type(hints.get(next(iter(unbound)))):
            raise _load_error(
                name,
                "the following parameters are declared in Python but not in the function definition "
                f"(function.json or function decorators): {unbound!r}",
            )
        actions = tuple(unbound)

    for param_name, binding in bound.items():
        if param_name in hints:
            _check_binding_annotation(name, param_name, binding, hints[param_name])

    returns = [b for b in bindings if b.get("name") == RETURN_BINDING]
    if returns and "return" in hints:
        _check_return_annotation(name, str(returns[0]["type"]), hints["return"])
    return actions, context_parameter


def _is_worker_generic(annotation: Any) -> bool:
    """The worker's idea of a generic (its typing_inspect.is_generic_type): a Generic subclass, or
    a typing alias such as typing.List[X], but not a union, tuple, ClassVar or Callable, and not
    the builtin generics of PEP 585 (list[X] is a types.GenericAlias, not a typing alias)."""
    if isinstance(annotation, type):
        return issubclass(annotation, typing.Generic)  # type: ignore[arg-type]
    typing_aliases = (typing._GenericAlias, typing._SpecialGenericAlias)  # type: ignore[attr-defined]
    return isinstance(annotation, typing_aliases) and typing.get_origin(annotation) not in (
        typing.Union,
        tuple,
        typing.ClassVar,
        collections.abc.Callable,
    )


def _is_out(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) if _is_worker_generic(annotation) else annotation
    return isinstance(origin, type) and origin.__name__ == "Out"


def _check_binding_annotation(name: str, param: str, binding: Mapping[str, Any], annotation: Any) -> None:
    if not isinstance(annotation, type) and not _is_worker_generic(annotation):
        raise _load_error(name, f"binding {param} has invalid non-type annotation {annotation!r}")
    if _is_out(annotation):
        raise _load_error(
            name,
            f'binding {param} is declared to have the "in" direction in the binding decorator, but its '
            "annotation is azure.functions.Out in Python",
        )
    binding_type = str(binding.get("type"))
    if annotation in (str, bytes):
        return  # the worker binds str and bytes through its generic binding
    deferred = deferred_binding_registry()
    if deferred is not None and deferred.check_supported_type(annotation):
        converter = deferred.get(binding_type)
    else:
        converter = func.get_binding_registry().get(binding_type)
    if converter is not None and not converter.check_input_type_annotation(annotation):
        shown = getattr(annotation, "__name__", repr(annotation))
        hint = ""
        if any(
            _is_subclass(a, azure.servicebus.ServiceBusReceivedMessage)
            for a in (annotation, *typing.get_args(annotation))
        ):
            hint = (
                " (annotate Service Bus trigger parameters with "
                "azurefunctions.extensions.bindings.servicebus.ServiceBusReceivedMessage, "
                "not azure.servicebus.ServiceBusReceivedMessage)"
            )
        raise _load_error(
            name,
            f'type of {param} binding in the binding decorator "{binding_type}" does not match its '
            f'Python annotation "{shown}"{hint}',
        )


def _check_return_annotation(name: str, binding_type: str, annotation: Any) -> None:
    if _is_worker_generic(annotation) and _is_out(annotation):
        raise _load_error(name, "return annotation should not be azure.functions.Out")
    if not isinstance(annotation, type):
        raise _load_error(name, f"has invalid non-type return annotation {annotation!r}")
    converter = func.get_binding_registry().get(binding_type)
    if converter is not None and not converter.check_output_type_annotation(annotation):
        raise _load_error(
            name,
            f'Python return annotation "{annotation.__name__}" does not match binding type "{binding_type}"',
        )


def deferred_binding_registry() -> Any:
    """The SDK-type (deferred) binding registry of azurefunctions-extensions-base, as the worker
    loads it: present once an extension such as the Service Bus one has been imported."""
    if "azurefunctions.extensions.base" not in sys.modules:
        return None
    import azurefunctions.extensions.base as extensions_base

    return extensions_base.get_binding_registry()


def _is_subclass(annotation: Any, cls: type) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, cls)


def _is_actions_type(annotation: Any) -> bool:
    return _is_subclass(annotation, ServiceBusMessageActions)


def _is_sdk_message_type(annotation: Any, many: bool) -> bool:
    """True when the trigger parameter asks for the SDK type (as the extension's converter decides)."""
    if annotation is None:
        return False
    candidates = [annotation]
    if many:
        args = typing.get_args(annotation)
        if len(args) == 1:
            candidates = [args[0]]
    # (azure.servicebus's own class is refused earlier, as the worker refuses it)
    return any(_is_subclass(c, ServiceBusReceivedMessage) for c in candidates)
