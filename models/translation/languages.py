"""Language codes: the service speaks ISO 639-1 (`en`, `es`); engines speak others.

Apertium names its modes with ISO 639-3 codes (`eng-spa`), NLLB with FLORES-200 codes
(`eng_Latn`), M2M-100 and OPUS-MT mostly with ISO 639-1. This table converts between them
for the languages that have an ISO 639-1 code; a language without one (Asturian, ...)
cannot be named through the API and is left out of the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1
    iso3: str  # ISO 639-3 (what apertium uses; individual-language codes where they differ)
    flores: str  # FLORES-200 code used by NLLB ("" when NLLB lacks the language)
    name: str


# code iso3 flores name   (iso3 aliases for the same language follow after a '|')
_TABLE = """
af afr afr_Latn Afrikaans
am amh amh_Ethi Amharic
an arg - Aragonese
ar ara|arb arb_Arab Arabic
az aze|azj azj_Latn Azerbaijani
ba bak bak_Cyrl Bashkir
be bel bel_Cyrl Belarusian
bg bul bul_Cyrl Bulgarian
bn ben ben_Beng Bengali
br bre - Breton
bs bos bos_Latn Bosnian
ca cat cat_Latn Catalan
cs ces ces_Latn Czech
cy cym cym_Latn Welsh
da dan dan_Latn Danish
de deu deu_Latn German
el ell ell_Grek Greek
en eng eng_Latn English
eo epo epo_Latn Esperanto
es spa spa_Latn Spanish
et est|ekk est_Latn Estonian
eu eus eus_Latn Basque
fa fas|pes pes_Arab Persian
ff ful|fuv fuv_Latn Fula
fi fin fin_Latn Finnish
fo fao fao_Latn Faroese
fr fra fra_Latn French
fy fry - Western Frisian
ga gle gle_Latn Irish
gd gla gla_Latn Scottish Gaelic
gl glg glg_Latn Galician
gu guj guj_Gujr Gujarati
ha hau hau_Latn Hausa
he heb heb_Hebr Hebrew
hi hin hin_Deva Hindi
hr hrv hrv_Latn Croatian
ht hat hat_Latn Haitian Creole
hu hun hun_Latn Hungarian
hy hye hye_Armn Armenian
id ind ind_Latn Indonesian
ig ibo ibo_Latn Igbo
is isl isl_Latn Icelandic
it ita ita_Latn Italian
ja jpn jpn_Jpan Japanese
jv jav jav_Latn Javanese
ka kat kat_Geor Georgian
kk kaz kaz_Cyrl Kazakh
km khm khm_Khmr Khmer
kn kan kan_Knda Kannada
ko kor kor_Hang Korean
ky kir kir_Cyrl Kyrgyz
la lat - Latin
lb ltz ltz_Latn Luxembourgish
lg lug lug_Latn Ganda
ln lin lin_Latn Lingala
lo lao lao_Laoo Lao
lt lit lit_Latn Lithuanian
lv lav|lvs lvs_Latn Latvian
mg mlg|plt plt_Latn Malagasy
mk mkd mkd_Cyrl Macedonian
ml mal mal_Mlym Malayalam
mn mon|khk khk_Cyrl Mongolian
mr mar mar_Deva Marathi
ms msa|zsm zsm_Latn Malay
mt mlt mlt_Latn Maltese
my mya mya_Mymr Burmese
nb nob nob_Latn Norwegian Bokmål
ne nep|npi npi_Deva Nepali
nl nld nld_Latn Dutch
nn nno nno_Latn Norwegian Nynorsk
oc oci oci_Latn Occitan
or ori|ory ory_Orya Odia
pa pan pan_Guru Punjabi
pl pol pol_Latn Polish
ps pus|pbt pbt_Arab Pashto
pt por por_Latn Portuguese
ro ron ron_Latn Romanian
ru rus rus_Cyrl Russian
sc srd srd_Latn Sardinian
sd snd snd_Arab Sindhi
si sin sin_Sinh Sinhala
sk slk slk_Latn Slovak
sl slv slv_Latn Slovenian
so som som_Latn Somali
sq sqi|als als_Latn Albanian
sr srp srp_Cyrl Serbian
ss ssw ssw_Latn Swati
su sun sun_Latn Sundanese
sv swe swe_Latn Swedish
sw swa|swh swh_Latn Swahili
ta tam tam_Taml Tamil
te tel tel_Telu Telugu
tg tgk tgk_Cyrl Tajik
th tha tha_Thai Thai
tl tgl tgl_Latn Tagalog
tn tsn tsn_Latn Tswana
tr tur tur_Latn Turkish
tt tat tat_Cyrl Tatar
uk ukr ukr_Cyrl Ukrainian
ur urd urd_Arab Urdu
uz uzb|uzn uzn_Latn Uzbek
vi vie vie_Latn Vietnamese
wo wol wol_Latn Wolof
xh xho xho_Latn Xhosa
yi yid|ydd ydd_Hebr Yiddish
yo yor yor_Latn Yoruba
zh zho|cmn zho_Hans Chinese
zu zul zul_Latn Zulu
"""


def _parse() -> tuple[dict[str, Language], dict[str, str], dict[str, str]]:
    by_code: dict[str, Language] = {}
    from_iso3: dict[str, str] = {}
    from_flores: dict[str, str] = {}
    for line in _TABLE.strip().splitlines():
        code, iso3, flores, name = line.split(maxsplit=3)
        aliases = iso3.split("|")
        by_code[code] = Language(code, aliases[0], "" if flores == "-" else flores, name)
        for alias in aliases:
            from_iso3[alias] = code
        if flores != "-":
            from_flores[flores] = code
    return by_code, from_iso3, from_flores


LANGUAGES, _FROM_ISO3, _FROM_FLORES = _parse()


def is_known(code: str) -> bool:
    return code in LANGUAGES


def name(code: str) -> str:
    return LANGUAGES[code].name


def to_iso1(code: str) -> str | None:
    """ISO 639-1 for an ISO 639-1, ISO 639-3 or FLORES-200 code (None when unknown)."""
    code = code.strip()
    if code in LANGUAGES:
        return code
    lowered = code.lower()
    if lowered in _FROM_ISO3:
        return _FROM_ISO3[lowered]
    if code in _FROM_FLORES:
        return _FROM_FLORES[code]
    # FLORES codes of a script the table does not name (zho_Hant): the language part decides
    return _FROM_ISO3.get(lowered.partition("_")[0])
