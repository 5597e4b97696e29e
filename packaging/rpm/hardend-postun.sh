# hardend %postun: reload systemd; after an upgrade restart the agent if it
# runs (%systemd_postun_with_restart); refresh the journald catalog; on
# erase, remove the package's empty directories.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart hardend.service >/dev/null 2>&1 || :
    fi
fi
if command -v journalctl >/dev/null 2>&1; then
    journalctl --update-catalog || :
fi
# On erase, the package's own directories go when they are empty (the package
# cannot own them: cargo-generate-rpm 0.21 makes no directory entries). An
# edited configuration stays as hardend.yaml.rpmsave, and with it /etc/hardend.
if [ "$1" -eq 0 ]; then
    rmdir /usr/share/hardend/policies /usr/share/hardend /usr/share/doc/hardend \
        /etc/hardend/policies.d /etc/hardend >/dev/null 2>&1 || :
fi
exit 0
