# hardend %post: the operator's policy directory and the journald catalog;
# on first install, enable and start the agent (as %systemd_post does, then
# start: the agent is meant to run once installed).
mkdir -p /etc/hardend/policies.d
chmod 0750 /etc/hardend/policies.d
if command -v journalctl >/dev/null 2>&1; then
    journalctl --update-catalog || :
fi
if [ "$1" -eq 1 ]; then
    systemctl --no-reload enable hardend.service >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || :
        systemctl start hardend.service >/dev/null 2>&1 || :
    fi
fi
exit 0
