"""What every part of the spec shares: strict JSON numbers, and unknown or renamed arguments
refused with the name Keras 3 uses.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, get_args

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from service.spec.suggestions import closest, spec_error, strict_bool, strict_float, strict_int

Int = Annotated[int, strict_int]
Float = Annotated[float, strict_float]
Bool = Annotated[bool, strict_bool]
PositiveInt = Annotated[Int, Field(ge=1)]
# Unbounded above, so refuse Infinity: JSON stores it as null, and the spec would not reload.
FiniteFloat = Annotated[Float, Field(allow_inf_nan=False)]


# Pydantic cannot fold a bound into the schema of a number that a BeforeValidator checks first
# (our strict numbers): it writes the bound under its Python name, which JSON Schema ignores.
_JSON_SCHEMA_BOUNDS = {
    "ge": "minimum",
    "le": "maximum",
    "gt": "exclusiveMinimum",
    "lt": "exclusiveMaximum",
}


def _standard_bounds(schema: Any) -> None:
    """Rename those bounds to JSON Schema's keywords, in a model's schema and all it nests."""
    if isinstance(schema, list):
        for item in schema:
            _standard_bounds(item)
        return
    if not isinstance(schema, dict):
        return
    for python_name, keyword in _JSON_SCHEMA_BOUNDS.items():
        if python_name in schema and not isinstance(schema[python_name], dict):
            schema[keyword] = schema.pop(python_name)
    schema.pop("allow_inf_nan", None)  # JSON has no Infinity or NaN to refuse
    for value in schema.values():
        _standard_bounds(value)


class SpecModel(BaseModel):
    """A Keras object as JSON: its own argument names only, each said once.

    `RENAMED` maps a name older Keras used to the argument Keras 3 calls it (named in the
    message only where this model has that argument); `REMOVED` maps a name Keras 3 dropped to
    what to do instead; `SUPPLIED` maps a Keras argument the service fills in itself (the
    data) to what to write instead.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra=lambda schema, _: _standard_bounds(schema)
    )

    RENAMED: ClassVar[dict[str, str]] = {}
    REMOVED: ClassVar[dict[str, str]] = {}
    SUPPLIED: ClassVar[dict[str, str]] = {}
    WHAT: ClassVar[str] = ""

    @classmethod
    def argument_names(cls) -> dict[str, str]:
        """Every key this model reads, to the field it fills (aliases included)."""
        names = {}
        for field_name, field in cls.model_fields.items():
            names[field_name] = field_name
            if isinstance(field.validation_alias, AliasChoices):
                for alias in field.validation_alias.choices:
                    if isinstance(alias, str):
                        names[alias] = field_name
            elif isinstance(field.validation_alias, str):
                names[field.validation_alias] = field_name
        return names

    @model_validator(mode="wrap")
    @classmethod
    def _known_arguments(cls, data: Any, handler: Any) -> Any:
        if isinstance(data, dict):
            problems = cls._argument_problems(data)
            if problems:
                raise ValidationError.from_exception_data(cls.__name__, problems)
        return handler(data)

    @classmethod
    def _argument_problems(cls, data: dict[Any, Any]) -> list[InitErrorDetails]:
        names = cls.argument_names()
        valid = [name for name in names if name != "type"]
        problems: list[InitErrorDetails] = []
        given: dict[str, str] = {}
        what = cls._what()
        for key in data:
            field = names.get(key) if isinstance(key, str) else None
            if field is not None:
                if field in given:
                    message = (
                        f"give {given[field]!r} or {key!r} (two names for one argument), not both"
                    )
                    problems.append(_problem("extra_forbidden", message, key, data[key]))
                given[field] = key
                continue
            problems.append(
                _problem("extra_forbidden", cls._unknown(key, valid, what), key, data[key])
            )
        return problems

    @classmethod
    def _unknown(cls, key: Any, valid: list[str], what: str) -> str:
        if isinstance(key, str) and cls.RENAMED.get(key) in valid:
            new = cls.RENAMED[key]
            return f"{what}: {key!r} is called {new!r} in Keras 3; write {new!r}"
        if isinstance(key, str) and key in cls.REMOVED:
            return f"{what}: Keras 3 has no {key!r}; {cls.REMOVED[key]}"
        if isinstance(key, str) and key in cls.SUPPLIED:
            return f"{what}: leave out {key!r}; {cls.SUPPLIED[key]}"
        suggestion = closest(key, valid) if isinstance(key, str) else None
        if suggestion is not None:
            return f"{what} has no argument {key!r}; did you mean {suggestion!r}?"
        listed = ", ".join(repr(name) for name in valid) or "none"
        return f"{what} has no argument {key!r}; its arguments are {listed}"

    @classmethod
    def _what(cls) -> str:
        """How messages name this object: its Keras type, else WHAT, else the class."""
        type_field = cls.model_fields.get("type")
        if type_field is not None and get_args(type_field.annotation):
            return str(get_args(type_field.annotation)[0])
        return cls.WHAT or cls.__name__


def _problem(kind: str, message: str, key: Any, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=spec_error(kind, message), loc=(key,), input=value)
