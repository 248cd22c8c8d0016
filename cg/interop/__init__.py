"""Models in and out: ONNX models become cg graph files (`cg import`, cg/interop/read.py, with each
import cross-checked node by node against ONNX's reference evaluator, cg/interop/crosscheck.py),
and cg graphs become ONNX models (`cg export`, cg/interop/write.py). The onnx package is an optional
extra (`pip install 'cg-graphs[onnx]'`), imported only here and only when a command needs it."""
