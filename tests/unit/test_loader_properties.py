"""Property tests: whatever bytes or YAML values reach a loader, only a codesign error escapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.errors import CodesignError
from codesign.safe_yaml import parse_yaml
from codesign.sim.config import AcceleratorConfig, load_yaml_mapping
from codesign.space import DesignSpace
from codesign.sweeps import read_results
from codesign.workloads.presets import apply
from codesign.workloads.scalesim_csv import read_topology
from codesign.workloads.yaml_io import network_from_dict, read_network_yaml
from codesign.workloads.zoo import get

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TINY = get("ds_cnn_kws")

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["ws", "os", "2:4", "w4a8", "conv", "linear", "matmul",
                                                           "ds_cnn_kws", "rows", "axes", "layers", "inf"]))
keys = st.one_of(st.sampled_from(["rows", "cols", "dataflow", "axes", "workloads", "base", "constraints", "sample",
                                  "pareto", "engine", "fpga", "layers", "type", "name", "in_features",
                                  "out_features", "weights", "inputs", "bits", "density", "sparsity", "start", "stop",
                                  "step", "mul", "values", "max_pes", "n", "seed", "m", "k", "a_shape", "b_shape"]),
                 st.text(max_size=6))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(keys, inner, max_size=5)), max_leaves=25)
documents = st.dictionaries(keys, values, max_size=6)


_SCRATCH: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def scratch(tmp_path_factory: pytest.TempPathFactory) -> None:
    _SCRATCH[:] = [tmp_path_factory.mktemp("loaders")]


def _file(data: bytes, name: str) -> Path:
    p = _SCRATCH[0] / name
    p.write_bytes(data)
    return p


def _only_codesign_errors(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except CodesignError as e:
        assert "\n" not in str(e).strip(), str(e)  # one line


@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes_into_file_loaders(data: bytes) -> None:
    _only_codesign_errors(load_yaml_mapping, _file(data, "accel.yaml"))
    _only_codesign_errors(read_network_yaml, _file(data, "net.yaml"))
    _only_codesign_errors(DesignSpace.from_yaml, _file(data, "space.yaml"))
    _only_codesign_errors(lambda p: apply(TINY, mixed=p), _file(data, "bits.yaml"))
    _only_codesign_errors(read_results, _file(data, "r.csv"))
    _only_codesign_errors(read_topology, _file(data, "topo.csv"))
    _only_codesign_errors(read_results, _file(data, "r.parquet"))


@SETTINGS
@given(st.lists(st.lists(st.one_of(st.integers(-3, 300).map(str), st.text(max_size=5)), max_size=9), max_size=6),
       st.sampled_from(["Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                        "Strides,", "Layer name, M, N, K", "Layer, M, N, K, Sparsity"]))
def test_random_topology_rows(rows: list[list[str]], header: str) -> None:
    text = header + "\n" + "".join(",".join(r) + "\n" for r in rows)
    _only_codesign_errors(read_topology, _file(text.encode(), "topo.csv"))


@SETTINGS
@given(st.text(max_size=300))
def test_random_text_into_yaml(text: str) -> None:
    _only_codesign_errors(lambda t: parse_yaml(t, name="t.yaml"), text)


@SETTINGS
@given(documents)
def test_random_yaml_documents_into_builders(doc: dict[str, Any]) -> None:
    text = yaml.safe_dump(doc)  # as a user would write it
    _only_codesign_errors(load_yaml_mapping, _file(text.encode(), "accel.yaml"))
    _only_codesign_errors(AcceleratorConfig.from_dict, doc)
    _only_codesign_errors(DesignSpace.from_dict, doc)
    _only_codesign_errors(lambda d: network_from_dict(d, "net.yaml"), doc)
    _only_codesign_errors(lambda d: apply(TINY, mixed=d), doc)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["rows", "cols", "dataflow", "weight_bits", "clock_mhz", "zero_handling",
                                        "input_sram_bytes"]), values, min_size=1, max_size=3))
def test_random_axes(axes: dict[str, Any]) -> None:
    _only_codesign_errors(lambda a: DesignSpace.from_dict({"workloads": ["ds_cnn_kws"], "axes": a}).point_ids(),
                          axes)
