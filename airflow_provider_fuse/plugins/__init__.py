"""The Fuse plugin of Airflow's API server: result callbacks in (``/fuse/callbacks/{token}``).

The paths below are a contract with every ``result_url`` already handed to Fuse: never change them.
"""

#: Where the API server mounts the plugin's app, and the callback route inside it.
PLUGIN_URL_PREFIX = "/fuse"
CALLBACKS_ROUTE = "/callbacks"
CALLBACKS_PATH = f"{PLUGIN_URL_PREFIX}{CALLBACKS_ROUTE}/"
