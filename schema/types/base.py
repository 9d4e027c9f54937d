"""Building strawberry objects from model rows: plain columns copy over, no resolvers."""

import dataclasses
from typing import Any, Self

from models import ids


class FromModel:
    """Types keep the row in a private `model` field and copy the plain columns."""

    @classmethod
    def from_model(cls, model: Any) -> Self:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if not f.init:
                continue
            if f.name == "id":
                values["id"] = ids.of(model)
            elif f.name == "model":
                values["model"] = model
            else:
                values[f.name] = getattr(model, f.name)
        return cls(**values)

    @classmethod
    def maybe(cls, model: Any) -> Self | None:
        return None if model is None else cls.from_model(model)
