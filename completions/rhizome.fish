complete --keep-order --exclusive --command rhizome --arguments "(COMPLETE=fish rhizome -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
