from ivrbot.cli import main

main()
