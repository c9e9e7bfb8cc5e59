"""A directory of SSH control sockets per inventory.

OpenSSH names a control socket after a hash of the local host, the remote
address, port and user (`%C`), not the jump host: two clusters whose hosts
share private addresses behind different bastions would share a connection,
and a command meant for one cluster would run on the other. This plugin gives
every inventory directory its own `ansible_control_path_dir`:
`~/.ansible/cp/<12 hex digits of the directory's path hash>`.

It sets the value for the group `all`, before the inventory's group_vars are
read (it is listed first in ansible.cfg's `vars_plugins_enabled`), so a value
in the inventory file's `all: vars:`, in `group_vars/` or on a host wins.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ansible.plugins.vars import BaseVarsPlugin  # type: ignore[import-untyped]

DOCUMENTATION = """
    name: kubeforge_control_path
    short_description: One SSH control-socket directory per inventory
    description:
      - Sets ansible_control_path_dir for the group all to ~/.ansible/cp/ and
        the first 12 hex digits of the SHA-256 of the inventory directory's
        real path, unless the inventory file's all vars set it.
      - The inventory's group_vars and host variables override it.
    options:
      stage:
        description:
          - Only when Ansible reads the inventory, with the inventory's own
            directory (vars plugins also run with the playbook's directory).
        default: inventory
        ini:
          - key: stage
            section: vars_kubeforge_control_path
        env:
          - name: ANSIBLE_VARS_PLUGIN_STAGE
    extends_documentation_fragment:
      - vars_plugin_staging
"""

VARIABLE = "ansible_control_path_dir"
BASE = "~/.ansible/cp"


def control_path_dir(inventory_dir: str) -> str:
    """The socket directory of the inventory in `inventory_dir`."""
    digest = hashlib.sha256(os.path.realpath(inventory_dir).encode()).hexdigest()
    return f"{BASE}/{digest[:12]}"


class VarsModule(BaseVarsPlugin):  # type: ignore[misc]
    REQUIRES_ENABLED = True

    def get_vars(self, loader: Any, path: str, entities: Any, cache: bool = True) -> dict[str, Any]:
        super().get_vars(loader, path, entities)
        if not isinstance(entities, list):
            entities = [entities]
        for entity in entities:
            if getattr(entity, "name", None) == "all" and VARIABLE not in entity.get_vars():
                return {VARIABLE: control_path_dir(path)}
        return {}
