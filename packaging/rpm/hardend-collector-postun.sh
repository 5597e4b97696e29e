# hardend-collector %postun: reload systemd; after an upgrade restart the
# collector if it runs (%systemd_postun_with_restart).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart hardend-collector.service >/dev/null 2>&1 || :
    fi
fi
# On erase, /etc/hardend-collector goes when it is empty (an edited
# configuration stays as collector.yaml.rpmsave, certificates stay too).
if [ "$1" -eq 0 ]; then
    rmdir /etc/hardend-collector >/dev/null 2>&1 || :
fi
exit 0
