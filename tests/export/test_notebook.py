"""The take-home generator, without TensorFlow: valid Python and nbformat for every spec type,
the notebook's own lines, defaults left out, and no way for a person's text to become code.

That each generated Keras call builds exactly the service's layer or optimizer is checked with
TensorFlow in tests/ml/test_keras_code.py; that the whole script trains to the same history, in
tests/worker/test_reproduction.py.
"""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from typing import Any

import nbformat
import pytest

from service.domain import Experiment, Status
from service.export import notebook
from service.export.keras_code import KERAS_CALLS, keras_code
from service.schemas.experiments import ExperimentCreate
from service.spec.experiment import ExperimentSpec
from service.spec.fingerprint import normalised_spec, spec_hash
from service.spec.notebook import FLATTEN, SOFTMAX_10, Spec
from service.spec.training import CompileSpec, FitSpec
from tests import factories
from tests.factories import IMAGE

ID = "0123456789abcdef0123456789abcdef"
# The newer layers, a kernel's regularizer and constraint of every kind, an Input to absorb.
NEWER_LAYERS: list[Spec] = [
    {"type": "Input", "shape": [28, 28]},
    IMAGE,
    {
        "type": "Conv2D",
        "filters": 4,
        "kernel_size": 3,
        "kernel_regularizer": {"type": "l1_l2", "l1": 0.001, "l2": 0.01},
        "kernel_constraint": {"type": "max_norm", "max_value": 3.0, "axis": [0, 1, 2]},
    },
    {"type": "PReLU", "shared_axes": [1, 2]},
    {"type": "Flatten"},
    {"type": "AlphaDropout", "rate": 0.1},
    {
        "type": "Dense",
        "units": 30,
        "kernel_regularizer": {"type": "l2"},
        "kernel_constraint": {"type": "non_neg"},
    },
    {"type": "ELU", "alpha": 0.5},
    {
        "type": "Dense",
        "units": 20,
        "kernel_regularizer": {"type": "l1", "l1": 0.001},
        "kernel_constraint": {"type": "unit_norm"},
    },
    {"type": "ReLU", "max_value": 6.0, "negative_slope": 0.1, "threshold": 0.5},
    SOFTMAX_10,
]
VERSIONS = {"python": "3.12.3", "tensorflow": "2.21.0", "keras": "3.15.1", "numpy": "2.4.6"}
EVERY_SPEC = [
    factories.leaky_relu_spec(),
    factories.batchnorm_spec(),
    factories.dropout_spec(fit={"early_stopping": {"monitor": "val_accuracy", "patience": 2}}),
    factories.conv_spec(fit={"validation_size": 0, "train_size": 1000}),
    *(
        factories.tiny_spec() | {"name": optimizer["type"], "compile": {"optimizer": optimizer}}
        for optimizer in factories.EVERY_OPTIMIZER_ARGUMENT
    ),
    *(
        factories.tiny_spec()
        | {
            "name": schedule["type"],
            "compile": {"optimizer": {"type": "SGD", "learning_rate": schedule}},
        }
        for schedule in factories.EVERY_SCHEDULE
    ),
    factories.tiny_spec(
        validation_size=0,
        validation_split=0.2,
        reduce_lr_on_plateau={"factor": 0.5, "patience": 1},
        early_stopping={"patience": 2},
        layer_health=False,
    )
    | {"name": "newer", "layers": NEWER_LAYERS},
]


def by_name(name: str) -> Spec:
    return next(body for body in EVERY_SPEC if body["name"] == name)


def experiment_of(body: dict[str, Any], **overrides: Any) -> Experiment:
    """An experiment as the repository hands it out, without a database."""
    spec = ExperimentCreate.model_validate(body)
    values: dict[str, Any] = {
        "id": ID,
        "name": spec.name,
        "description": spec.description,
        "spec": normalised_spec(spec.draft().spec),
        "summary": None,
        "status": Status.SUCCEEDED,
        "created_at": datetime.now(UTC),
        "started_at": None,
        "finished_at": None,
        "test_loss": None,
        "test_accuracy": None,
        "error": None,
        "attempt": 1,
        "max_attempts": 3,
        "cancel_requested": False,
        "model_uri": None,
        "worker": None,
        "versions": VERSIONS,
        "spec_hash": spec_hash(spec.draft().spec),
        "seed": spec.fit.seed,
    }
    return Experiment(**(values | overrides))


def code_lines(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.strip() and not line.startswith("#")]


def code_cells(experiment: Experiment) -> list[Any]:
    cells = json.loads(notebook.notebook_json(experiment))["cells"]
    return [cell for cell in cells if cell["cell_type"] == "code"]


def spec_types() -> set[str]:
    """Every `type` a spec object can have: layers, optimizers and whatever nests in them."""
    definitions = ExperimentSpec.model_json_schema().get("$defs", {})
    return {
        definition["properties"]["type"]["const"]
        for definition in definitions.values()
        if "const" in definition.get("properties", {}).get("type", {})
    }


def test_every_spec_type_has_keras_code() -> None:
    missing = spec_types() - set(KERAS_CALLS)
    assert not missing, f"add {sorted(missing)} to KERAS_CALLS in service/export/keras_code.py"


def test_every_compile_and_fit_argument_is_written() -> None:
    """A new compile or fit argument must reach the script, or it would silently differ."""
    assert set(CompileSpec.model_fields) <= notebook.COMPILE_FIELDS_WRITTEN
    written = notebook.FIT_FIELDS_WRITTEN | notebook.FIT_FIELDS_SERVICE_ONLY
    assert set(FitSpec.model_fields) <= written


@pytest.mark.parametrize("body", EVERY_SPEC, ids=lambda body: body["name"])
def test_script_and_notebook_are_valid_and_hold_the_same_code(body: dict[str, Any]) -> None:
    experiment = experiment_of(body)
    script = notebook.script(experiment)
    ast.parse(script)
    document = nbformat.reads(notebook.notebook_json(experiment), as_version=4)
    nbformat.validate(document)
    code = [cell.source for cell in document.cells if cell.cell_type == "code"]
    assert code == [cell.code for cell in notebook.cells(experiment) if cell.code]
    assert all(block in script for block in code)


def test_the_leaky_relu_net_reads_as_the_notebook_wrote_it() -> None:
    lines = code_lines(notebook.script(experiment_of(factories.leaky_relu_spec())))
    for expected in [
        "x_train_full, x_test = x_train_full / 255.0, x_test / 255.0",
        "x_valid, x_train = x_train_full[:5000], x_train_full[5000:]",
        "keras.utils.set_random_seed(42)",
        "model = keras.Sequential([",
        "    keras.Input(shape=[28, 28]),",
        "    keras.layers.Flatten(),",
        '    keras.layers.Dense(300, kernel_initializer="he_normal"),',
        "    keras.layers.LeakyReLU(),",
        '    keras.layers.Dense(10, activation="softmax"),',
        '    loss="sparse_categorical_crossentropy",',
        "    optimizer=keras.optimizers.SGD(learning_rate=0.001),",
        '    metrics=["accuracy"],',
        "    epochs=10,",
        "    batch_size=32,",
        "    validation_data=(x_valid, y_valid),",
        "probabilities = model.predict(x_test, batch_size=1024)",
        "test_loss = float(-np.log(np.clip(right, 1e-07, 1 - 1e-07)).mean())",
    ]:
        assert expected in lines
    assert not any("train_size" in line or "x_train[:" in line for line in lines)


def test_the_split_follows_validation_and_train_size() -> None:
    lines = code_lines(
        notebook.script(experiment_of(factories.tiny_spec(validation_size=0, train_size=700)))
    )
    assert "x_train, y_train = x_train_full, y_train_full" in lines
    assert "x_train, y_train = x_train[:700], y_train[:700]" in lines
    assert not any("validation_data" in line for line in lines)


def test_validation_split_and_the_callbacks_are_fit_arguments() -> None:
    experiment = experiment_of(by_name("newer"))
    lines = code_lines(notebook.script(experiment))
    assert "x_train, y_train = x_train_full, y_train_full" in lines
    assert "x_train, y_train = x_train[:2000], y_train[:2000]" in lines
    assert "    validation_split=0.2," in lines
    assert (
        "    callbacks=[keras.callbacks.EarlyStopping(patience=2), "
        "keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=1)]," in lines
    )
    assert not any("validation_data" in line or "layer_health" in line for line in lines)
    assert "of which `fit(validation_split=0.2)` holds out the last 20% to validate" in (
        notebook.cells(experiment)[2].markdown
    )


def test_an_input_layer_or_input_shape_is_absorbed_by_the_scripts_own_input() -> None:
    for layers in (
        [{"type": "Input", "shape": [28, 28]}, FLATTEN, SOFTMAX_10],
        [{"type": "Flatten", "input_shape": [28, 28]}, SOFTMAX_10],
    ):
        script = notebook.script(experiment_of(factories.tiny_spec() | {"layers": layers}))
        model = script[script.index("model = keras.Sequential([") :].splitlines()[:4]
        assert model == [
            "model = keras.Sequential([",
            "    keras.Input(shape=[28, 28]),",
            "    keras.layers.Flatten(),",
            '    keras.layers.Dense(10, activation="softmax"),',
        ]


def test_nested_objects_are_nested_calls() -> None:
    lines = code_lines(notebook.script(experiment_of(by_name("newer"))))
    for expected in [
        "    keras.layers.Conv2D(4, 3, kernel_regularizer=keras.regularizers.L1L2(l1=0.001, "
        "l2=0.01), kernel_constraint=keras.constraints.MaxNorm(max_value=3.0, axis=[0, 1, 2])),",
        "    keras.layers.Dense(30, kernel_regularizer=keras.regularizers.L2(), "
        "kernel_constraint=keras.constraints.NonNeg()),",
        "    keras.layers.PReLU(shared_axes=[1, 2]),",
        "    keras.layers.AlphaDropout(0.1),",
    ]:
        assert expected in lines
    piecewise = experiment_of(by_name("PiecewiseConstantDecay"))
    assert (
        "    optimizer=keras.optimizers.SGD(learning_rate=keras.optimizers.schedules."
        "PiecewiseConstantDecay([100, 200], [0.1, 0.01, 0.001])),"
    ) in code_lines(notebook.script(piecewise))


def test_arguments_at_their_defaults_are_left_out() -> None:
    dense = ExperimentCreate.model_validate(factories.tiny_spec()).layers[1]
    assert keras_code(dense) == 'keras.layers.Dense(10, activation="softmax")'
    adam = CompileSpec.model_validate({"optimizer": "adam"}).optimizer
    assert keras_code(adam) == "keras.optimizers.Adam()"


def test_provenance_is_in_the_introduction() -> None:
    experiment = experiment_of(factories.tiny_spec(seed=7))
    script = notebook.script(experiment)
    assert f"Experiment `{ID}`" in script
    assert "- seed: 7" in script
    assert f"- spec sha256: `{experiment.spec_hash}`" in script
    assert "Python 3.12.3, TensorFlow 2.21.0, Keras 3.15.1, numpy 2.4.6" in script
    queued = notebook.script(
        experiment_of(factories.tiny_spec(), versions={}, status=Status.QUEUED)
    )
    assert "not trained yet (queued)" in queued


@pytest.mark.parametrize(
    "text",
    [
        "x\nimport os; os.system('rm -rf ~')",
        "x\rimport os",
        "x\u2028import os",
        "x\x0bimport os\x00",
        "x\x85import os",
    ],
)
def test_a_name_or_description_never_becomes_code(text: str) -> None:
    body = factories.tiny_spec() | {"name": text, "description": text}
    experiment = experiment_of(body)
    script = notebook.script(experiment)
    tree = ast.parse(script)
    assert not any("import os;" in line or "os.system" in line for line in code_lines(script))
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    assert [alias.name for node in imports for alias in node.names] == ["os", "keras", "numpy"]
    plain = experiment_of(factories.tiny_spec())
    assert code_cells(experiment) == code_cells(plain)


def test_html_in_a_name_is_shown_not_rendered_in_the_notebook() -> None:
    experiment = experiment_of(factories.tiny_spec() | {"name": "<script>alert(1)</script>"})
    title = json.loads(notebook.notebook_json(experiment))["cells"][0]["source"][0]
    assert title.startswith("# &lt;script&gt;alert(1)&lt;/script&gt;")
    assert "# <script>alert(1)</script>" in notebook.script(experiment)


def test_a_model_trained_with_xla_is_exported_with_jit_compile() -> None:
    """XLA's arithmetic differs from TensorFlow's kernels in the last digits: the kernels a
    run was trained with are recorded beside the versions, and its notebook compiles the same
    way, so it reproduces the run to the last digit either way."""
    exact = notebook.script(
        experiment_of(factories.leaky_relu_spec(), versions=VERSIONS | {"kernels": "TensorFlow"})
    )
    assert not any("jit_compile" in line for line in code_lines(exact))
    assert "kernels: TensorFlow" in exact
    xla = notebook.script(
        experiment_of(factories.leaky_relu_spec(), versions=VERSIONS | {"kernels": "XLA"})
    )
    assert "    jit_compile=True," in code_lines(xla)
    assert "kernels: XLA" in xla
    compile_call = next(node for node in ast.walk(ast.parse(xla)) if _is_compile(node))
    assert any(keyword.arg == "jit_compile" for keyword in compile_call.keywords)


def _is_compile(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "compile"
    )
