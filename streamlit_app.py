"""Pythia Head Atlas: the entry script, the frame around every page (`ui.frame`).

`st.navigation` makes this script run on every page view: it sets the layout, draws the links
to every page, applies the deployment's public mode and runs the page inside the error guard,
so no page can forget either. The pages are the scripts in `pages/` (`ui.navigation`);
docs/architecture.md says where each kind of change goes.
"""

from ui.frame import run_app

run_app()
