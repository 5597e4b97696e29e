# hardend %postun: reload systemd; after an upgrade restart the agent if it
# runs (%systemd_postun_with_restart); refresh the journald catalog.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart hardend.service >/dev/null 2>&1 || :
    fi
fi
if command -v journalctl >/dev/null 2>&1; then
    journalctl --update-catalog || :
fi
exit 0
