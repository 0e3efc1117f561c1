# Tend's %post ($1: 1 on install, 2 on upgrade): enable the service and
# start it on install, restart it on upgrade.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -eq 1 ]; then
        systemctl enable --now tend.service >/dev/null 2>&1 || :
    else
        systemctl try-restart tend.service >/dev/null 2>&1 || :
    fi
elif [ "$1" -eq 1 ]; then
    # No running systemd (an image being built): enable for the next boot.
    systemctl enable tend.service >/dev/null 2>&1 || :
fi
