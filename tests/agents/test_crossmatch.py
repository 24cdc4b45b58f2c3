"""The crossmatch agent in memory: a small catalogue matched on the non-solar stream.

The ``process`` agent runs its real stream code in ``test_context()`` with a chain file of
``catalogue_match`` (a four-source CSV catalogue written by the test) and
``emit_annotations``, on non-solar sample alerts framed as the gateway frames them, with
schemas from a dict-backed stand-in for the registry (a server:
``tests/integration/test_objects_sinks.py`` runs the worker on the real one). The catalogue's
sources are placed by hand at known offsets north of two alerts' raw positions, so the
expected separations are those offsets.
"""

from agents.crossmatch import build

from .harness import close_to, is_solar, object_key, prepare, run_agent, samples

ARCSEC = 1.0 / 3600.0


def write_chain(tmp_path, ztf, lsst):
    z, s = ztf.record["candidate"], lsst.record["diaSource"]
    catalogue = tmp_path / "bright.csv"
    catalogue.write_text(
        "id,ra,dec,mag,kind\n"
        f"1,{z['ra']!r},{z['dec'] + 1.0 * ARCSEC!r},17.0,star\n"
        f"2,{s['ra']!r},{s['dec'] + 1.5 * ARCSEC!r},18.5,galaxy\n"
        f"3,{s['ra']!r},{s['dec'] - 5.0 * ARCSEC!r},19.0,star\n"  # outside the radius
        "4,200.0,10.0,12.0,star\n"
    )
    chain = tmp_path / "crossmatch.toml"
    chain.write_text(
        'name = "crossmatch"\n'
        "[[processor]]\nuse = 'catalogue_match'\n"
        f"path = '{catalogue}'\nid_column = 'id'\nradius_arcsec = 2.0\nk = 2\n"
        "columns = ['mag', 'kind']\n"
        "[[processor]]\nuse = 'emit_annotations'\nstream = 'annotations'\n"
    )
    return chain


async def test_alerts_near_a_source_are_annotated_with_it_the_others_send_nothing(
    settings, registry, tmp_path
):
    alerts = [s for s in samples("ztf") + samples("lsst") if not is_solar(s)]
    ztf = next(s for s in alerts if s.survey == "ztf")
    lsst = next(s for s in alerts if s.survey == "lsst")
    app = build(settings.model_copy(update={"crossmatch_chain": write_chain(tmp_path, ztf, lsst)}))
    sent = prepare(app)
    async with run_agent(app, "process") as feed:
        for sample in alerts:
            await feed.put(registry.frame_sample(sample), key=object_key(sample))

    annotations = sent.on("annotations")
    assert [m.key for m in annotations] == [object_key(ztf), object_key(lsst)]
    expected = [
        {
            "survey": "ztf",
            "alert_id": ztf.record["candidate"]["candid"],
            "object_id": ztf.record["objectId"],
            "annotations": {
                "catalogue_match": {
                    "catalogue": "bright",
                    "matches": [{"id": 1, "separation_arcsec": 1.0, "mag": 17.0, "kind": "star"}],
                }
            },
        },
        {
            "survey": "lsst",
            "alert_id": lsst.record["diaSource"]["diaSourceId"],
            "object_id": lsst.record["diaObject"]["diaObjectId"],
            "annotations": {
                "catalogue_match": {
                    "catalogue": "bright",
                    "matches": [{"id": 2, "separation_arcsec": 1.5, "mag": 18.5, "kind": "galaxy"}],
                }
            },
        },
    ]
    close_to([m.json() for m in annotations], expected, rel=1e-6)
    assert sent.topics() == {"annotations"}
    assert app.status()["outcomes"] == {"passed": len(alerts)}
