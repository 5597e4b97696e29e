# hardend-collector %postun: reload systemd; after an upgrade restart the
# collector if it runs (%systemd_postun_with_restart).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart hardend-collector.service >/dev/null 2>&1 || :
    fi
fi
exit 0
