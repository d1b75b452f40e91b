"""Model files: what a .ckpt, .mindir or .onnx file holds and how to run it, one layer below the engine and the
inference package (evaluation, validation, predict, the demo, detect, Predictor and export all use it).

- `metadata`: the JSON metadata an exported MindIR or ONNX file carries (one schema for the writers and the reader).
- `reader`: `read_model_file` opens a model file once (`ModelFile`: model config, card, preprocessing, evaluation
  settings); `apply_model_file` resolves a Config against it.
- `loader`: `load_inference_model` -> `InferenceModel` (any batch in, outputs out) and `AUProbabilities`, the
  sigmoid wrapper evaluation and exports run.

The submodules import MindSpore and ONNX Runtime only when a file is opened or a network built.
`mindface_au.inference.model_file`, `.metadata` and `.loader` are the same names, kept importable.
"""
