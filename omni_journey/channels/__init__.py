"""Channel intelligence: which channel (and when) for each customer.

``policy`` (the rule, the decision log, the runner's interface), ``learned`` (the
learned policy), ``features`` and ``design`` (history to model inputs), ``model``
(the calibrated click x order model), ``artefacts`` (files and registry), ``train``,
``logged`` and ``evaluate`` (off-policy evaluation), ``baselines`` and ``sendtime``.
The demo shop that answers messages lives in :mod:`omni_journey.lab`. See
docs/channels.md.

Nothing is imported here: ``policy`` stays light; the modules that need scikit-learn
import it themselves.
"""
