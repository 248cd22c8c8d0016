"""Stage 5, eval: a Graph -> numbers. `plan.py` compiles a graph once into slots and steps, and
holds the graph walks (reachable, between); `interp.py` runs the forward and backward passes over
a plan into a Result (the facade's cg.run); `grad.py` is value_and_grad, `jacobian.py` the
Jacobian, `edges.py` every edge's local derivative, `paths.py` the paths between two nodes."""
