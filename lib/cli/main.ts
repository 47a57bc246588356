#!/usr/bin/env node
/** The `responses-relay` command. */
process.stdout.write('usage: responses-relay --upstream URL [--port 8080]\n');
