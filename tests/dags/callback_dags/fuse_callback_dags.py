"""The task instance a callback is addressed to, and a DAG scheduled on the deployment's asset."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from airflow_provider_fuse.callbacks import deployment_asset


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def callback_target() -> None:
    @task
    def call() -> None:
        """Stands for a call task: the callback's token names this task instance."""

    call()


@dag(schedule=[deployment_asset(1, 2)], start_date=datetime(2026, 1, 1), catchup=False)
def on_call_outcome() -> None:
    @task
    def follow_up() -> None:
        """Declares the asset, so the callback's asset event has somewhere to go."""

    follow_up()


callback_target()
on_call_outcome()
