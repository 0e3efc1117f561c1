(* Tests for Tend_extra: run with `augparse -I agent/lenses agent/lenses/tests/test_tend_extra.aug` *)
module Test_tend_extra =

(* Test: ufw.conf as Debian ships it, enabled. Simplevars keeps blank lines
   as label-less nodes, which no augeas path (and so no `augeas` row) names. *)
test Tend_extra.lns get "# /etc/ufw/ufw.conf
#

# Set to yes to start on boot. If setting this remotely, be sure to add a rule
# to allow your remote connection before starting ufw. Eg: 'ufw allow 22/tcp'
ENABLED=yes

# Please use the 'ufw' command to set the loglevel. Eg: 'ufw logging medium'.
# See 'man ufw' for details.
LOGLEVEL=low
" =
  { "#comment" = "/etc/ufw/ufw.conf" }
  {  }
  {  }
  { "#comment" = "Set to yes to start on boot. If setting this remotely, be sure to add a rule" }
  { "#comment" = "to allow your remote connection before starting ufw. Eg: 'ufw allow 22/tcp'" }
  { "ENABLED" = "yes" }
  {  }
  { "#comment" = "Please use the 'ufw' command to set the loglevel. Eg: 'ufw logging medium'." }
  { "#comment" = "See 'man ufw' for details." }
  { "LOGLEVEL" = "low" }

(* Test: a quoted value keeps its quotes, as Shellvars does *)
test Tend_extra.lns get "ENABLED=\"no\"\n" =
  { "ENABLED" = "\"no\"" }
