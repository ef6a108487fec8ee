"""Did-you-mean for every name a spec may get wrong, and the error that carries the message.

Pydantic's own wording ("Input tag 'dense' found using 'type' does not match any of the
expected tags", "Value error, ...") reads like a stack trace to a learner; every refusal the
spec raises goes through `spec_error` instead, in words a person would write.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, get_args

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

# Up to this many names are listed when no choice is close enough to suggest.
_LISTED = 20


def spec_error(kind: str, message: str) -> PydanticCustomError:
    """A validation error of type `kind` whose message is `message`, verbatim."""
    # Passed as context, not as the template: our messages quote JSON, and its braces would
    # otherwise be read as placeholders.
    return PydanticCustomError(kind, "{message}", {"message": message})


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice `name` most likely meant, ignoring case; None when none is close."""
    by_lower: dict[str, str] = {}
    for choice in choices:  # the first of several spellings ("l1l2", "L1L2") is suggested
        by_lower.setdefault(choice.lower(), choice)
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


def unknown_name(what: str, name: object, choices: Iterable[str]) -> str:
    """'unknown activation 'Relu'; did you mean 'relu'?', or the list of valid choices."""
    options = list(choices)
    shown = f"'{name}'" if isinstance(name, str) else f"{name!r} (not a name)"
    suggestion = closest(name, options) if isinstance(name, str) else None
    if suggestion is not None:
        return f"unknown {what} {shown}; did you mean '{suggestion}'?"
    listed = ", ".join(f"'{option}'" for option in options[:_LISTED])
    more = f" and {len(options) - _LISTED} more" if len(options) > _LISTED else ""
    return f"unknown {what} {shown}; choose one of {listed}{more}"


def choice(what: str, literal: Any) -> BeforeValidator:
    """Put before a `Literal`: a name outside it is refused with did-you-mean.

    The error keeps pydantic's `literal_error` type, so clients that read types still can.
    """
    options: tuple[str, ...] = get_args(literal)

    def check(value: Any) -> Any:
        if isinstance(value, str) and value in options:
            return value
        raise spec_error("literal_error", unknown_name(what, value, options))

    return BeforeValidator(check)


def _number(kind: str, noun: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise spec_error(kind, f"must be {noun}, not {str(value).lower()}")
        if isinstance(value, str):
            raise spec_error(
                kind, f"must be {noun}, not the string {value!r}: write it without quotes"
            )
        return value

    return check


def _boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    shown = f"the string {value!r}" if isinstance(value, str) else repr(value)
    raise spec_error("bool_type", f"must be true or false, not {shown}")


# Keras takes numbers, not numeric strings, and a bool is not a number to it either: pydantic's
# lax mode would turn "0.001" into 0.001 and true into 1 without a word.
strict_int = BeforeValidator(_number("int_type", "a whole number"))
strict_float = BeforeValidator(_number("float_type", "a number"))
strict_bool = BeforeValidator(_boolean)


def _tag(model: Any) -> str:
    return str(get_args(model.model_fields["type"].annotation)[0])


def known_type(
    union: Any, *, what: str, by_name: bool = True, keras_names: Mapping[str, str] | None = None
) -> BeforeValidator:
    """Put before a union told apart by `"type"`: did-you-mean for an unknown type.

    With `by_name`, a bare name stands for the object with its defaults (`"adam"`), as Keras
    accepts; like Keras, such a name is matched ignoring case. `keras_names` (name -> type)
    lists instead exactly the names Keras's own `get` takes, which are also taken as a type.
    """
    tags = [_tag(member) for member in get_args(union)]
    by_lower = {tag.lower(): tag for tag in tags}
    example = f'{{"type": "{tags[0]}", ...}}'

    def named(value: str) -> dict[str, str]:
        if keras_names is None and value.lower() in by_lower:
            return {"type": by_lower[value.lower()]}
        if keras_names is not None and value in keras_names:
            return {"type": keras_names[value]}
        names = list(keras_names or tags)
        message = unknown_name(what, value, names)
        if keras_names is not None and "did you mean" in message:
            message += f" (Keras's names: {', '.join(repr(name) for name in names)})"
        raise spec_error("union_tag_invalid", message)

    def check(value: Any) -> Any:
        if by_name and isinstance(value, str):
            return named(value)
        if not isinstance(value, dict):
            shape = f"{example} or its name" if by_name else example
            raise spec_error("model_type", f"give the {what} as an object like {shape}")
        if "type" not in value:
            listed = ", ".join(f"'{tag}'" for tag in tags)
            raise spec_error("union_tag_not_found", f'give the {what} a "type": one of {listed}')
        tag = value["type"]
        if keras_names is not None and isinstance(tag, str) and tag in keras_names:
            return {**value, "type": keras_names[tag]}
        if not (isinstance(tag, str) and tag in tags):
            raise spec_error("union_tag_invalid", unknown_name(f"{what} type", tag, tags))
        return value

    return BeforeValidator(check)
