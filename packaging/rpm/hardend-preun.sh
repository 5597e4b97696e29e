# hardend %preun: on erase (not upgrade), stop and disable the agent, as
# %systemd_preun does.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable --now hardend.service >/dev/null 2>&1 || :
fi
exit 0
