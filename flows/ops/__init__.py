"""Operating a pipeline: the Prefect server and its dashboard (ui.py), a run's artifacts and plots
(artifacts.py, funnel_plot.py), the fine-tune trigger and the deployments' names (trigger.py;
flows/deployments.py serves them) and scale-out of the CPU-heavy tasks to a Dask cluster
(scale.py)."""
