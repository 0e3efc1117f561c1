# Tend's %postun: forget the removed unit. The state in /var/lib/tend is
# kept, as RPM has no purge; remove it by hand to start afresh.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
