"""network-view: the activations it draws are the network's own, and the linear probe shows
the colours coming apart layer by layer."""

from __future__ import annotations

import numpy as np

import xbackprop as xb


def test_layers_and_probes(lesson_backend, quick):
    result = quick("network-view", lesson_backend)
    names = [name for name, _ in result.layers]
    assert names == ["input", "hidden 1 (tanh)", "hidden 2 (tanh)", "output scores"]
    n = len(result.labels)
    assert [a.shape for _, a in result.layers] == [(n, 2), (n, 8), (n, 8), (n, 3)]
    probes = result.probes
    assert probes[0] < 0.7            # the arms are tangled at the input
    assert probes[2] > 0.9            # the last hidden layer separates them linearly
    assert probes[2] > probes[0] + 0.2
    assert "linear probe" in str(result)


def test_activations_are_the_networks_own(quick):
    """Each hidden layer's activations equal the trained network cut after that layer."""
    result = quick("network-view")
    model = result.trained.model
    params = xb.tree_to_backend(result.trained.params, "numpy")
    x = result.layers[0][1]
    for cut, (_, acts) in zip([2, 4], result.layers[1:3]):
        head = xb.Sequential(model.layers[:cut])
        np.testing.assert_allclose(xb.to_numpy(head(params[:cut], x)), acts, rtol=1e-5,
                                   atol=1e-6)
    np.testing.assert_allclose(xb.to_numpy(model(params, x)), result.layers[-1][1], rtol=1e-5,
                               atol=1e-5)
