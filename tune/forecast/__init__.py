"""`hpo plan`: what a sweep will cost before it runs. The trials it will create and their model
shapes (trials.py), a few real training steps of each shape timed (measure.py), and the
scheduler replayed over simulated learning curves and trial orders (simulate.py), put together
and printed by plan.py (docs/architecture.md, "Plan")."""
