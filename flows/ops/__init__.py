"""Operating a pipeline: Prefect deployments and schedules (serve.py), the Prefect server and
its dashboard (ui.py), artifacts and plots of a run (artifacts.py, funnel_plot.py) and
scale-out of the CPU-heavy tasks to a Dask cluster (scale.py)."""
