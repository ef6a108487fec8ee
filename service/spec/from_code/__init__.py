"""Keras code read, never run: a notebook's `Sequential`, `compile` and `fit` as spec JSON.

The source is parsed with `ast` and walked; nothing in it is imported, evaluated or executed.
A value is taken only where it is written out (a literal, simple arithmetic on numbers, a name
assigned such a value earlier, a call of a Keras class the spec knows); anything else (a
custom layer, a lambda, a value computed at run time) is refused with its line and column and
what would work. What is not about the model (`model.summary()`, plotting, `evaluate`) is
skipped and listed. Cells of a notebook are read in order, sharing their names, as a kernel
would run them.

Its modules: `reader` (the walk over the statements; `read_cells`, `read_code`), `models`
(Sequential, add, compile and fit as the spec's parts), `values` (what a written value says),
`results` (what a reading gives, `Where`, `CodeRefused`) and `vocabulary` (what it knows of
Keras). service/export/keras_code.py writes the other way; tests/spec/test_from_code.py holds
the two to a round trip.
"""
