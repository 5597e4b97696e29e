# hardend-collector %preun: on erase (not upgrade), stop and disable the
# collector, as %systemd_preun does.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable --now hardend-collector.service >/dev/null 2>&1 || :
fi
exit 0
